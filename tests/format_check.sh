#!/usr/bin/env bash
# Fails when a C++ file differs from .clang-format's layout; names the files.
cd "$(dirname "$0")/.."
bad=()
while IFS= read -r f; do
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done < <(git ls-files '*.cc' '*.hh' 2>/dev/null || find app lib drivers tests -name '*.cc' -o -name '*.hh')
if [ ${#bad[@]} -ne 0 ]; then
    echo "not clang-formatted (run: clang-format -i FILE):"
    printf '  %s\n' "${bad[@]}"
    exit 1
fi
echo "all C++ files formatted"
