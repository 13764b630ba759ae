#!/usr/bin/env bash
# The man pages and --help agree: every option, devarg key and command one
# of them names, the other names too (EAL's own options excepted: DPDK
# documents those). Exit statuses are compared as numbers.
# Usage: man_help_test.sh SOURCE_ROOT BUILD_DIR
set -uo pipefail
src=$1 build=$2
failed=0
fail() { echo "FAIL: $*"; failed=1; }

# Words of a kind in a text, one per line, sorted, unique.
longopts() { grep -o -- '--[a-z][a-z-]*[a-z]' | grep -v -x -e '--vdev' -e '--file-prefix' -e '--no-huge' | sort -u; }
shortopts() { grep -o -- '\(^\|[[ ]\)-[a-zA-Z]\b' | tr -d '[ ' | sort -u; }
devargs() { grep -o '\b[a-z][a-z-]*=' | sort -u; }
commands() { grep -o '\b\(port-add\|port-del\|port-list\|save-config\|port-[a-z]*\|[a-z]*-config\)\b' | sort -u; }

# $1: name; $2: what; $3, $4: the two lists.
same() {
    local only_help only_man
    only_help=$(comm -23 <(echo "$3") <(echo "$4") | tr '\n' ' ')
    only_man=$(comm -13 <(echo "$3") <(echo "$4") | tr '\n' ' ')
    [ -z "$only_help" ] || fail "$1: $2 in --help, not in the man page: $only_help"
    [ -z "$only_man" ] || fail "$1: $2 in the man page, not in --help: $only_man"
    [ -n "$3" ] || fail "$1: no $2 found in --help"
}

for tool in dpdk-vuiso vuiso-ctl vuiso-probe; do
    help=$("$build/app/$tool/$tool" --help 2>&1)
    page=$(MANWIDTH=200 man -l "$src/doc/man/$tool.8" 2>/dev/null | sed 's/‐/-/g')
    [ -n "$page" ] || fail "$tool.8 renders empty"
    # The man page's SYNOPSIS to SEE ALSO, without its EXAMPLES.
    page=$(echo "$page" | sed -n '/^SYNOPSIS/,/^SEE ALSO/p' | sed '/^EXAMPLES/,/^SEE ALSO/d')
    same "$tool" "long options" "$(echo "$help" | longopts)" "$(echo "$page" | longopts)"
    case $tool in
    dpdk-vuiso)
        # The keys of the devargs line and the man page's PORT DEVARGS.
        same "$tool" "devarg keys" "$(echo "$help" | grep '^port devargs:' | devargs)" \
            "$(echo "$page" | sed -n '/^PORT DEVARGS/,/^OPTIONS/p' | grep '^ \{7\}[a-z]' | devargs)" ;;
    vuiso-ctl)
        same "$tool" "short options" "$(echo "$help" | shortopts)" "$(echo "$page" | shortopts)"
        same "$tool" "commands" "$(echo "$help" | commands)" "$(echo "$page" | commands)" ;;
    vuiso-probe)
        same "$tool" "short options" "$(echo "$help" | grep '^  -' | shortopts)" \
            "$(echo "$page" | sed -n '/^OPTIONS/,/^[A-Z]/p' | shortopts)" ;;
    esac
    # Exit statuses: the lone digits of what each says about exiting.
    codes() { grep -i -A4 'exit' | grep -o '\(^\| \)[0-9]\b' | tr -d ' ' | sort -u; }
    same "$tool" "exit statuses" "$(echo "$help" | codes)" "$(echo "$page" | sed -n '/^EXIT STATUS/,/^[A-Z]/p' | codes)"
done
[ "$failed" = 0 ] && echo "PASS: the man pages and --help name the same options, keys, commands and exit statuses"
exit "$failed"
