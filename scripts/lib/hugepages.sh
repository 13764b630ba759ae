# Reserves 2 MiB hugepages for a run; release_hugepages gives back what was
# added (call it from the script's EXIT trap). Sourced by test.sh and
# demo.sh; needs root.

# reserve_hugepages N: at least N free hugepages from now on, if the
# kernel can find them. Sets VUISO_HUGEPAGES_ADDED; returns non-zero if
# fewer than N are free afterwards.
reserve_hugepages() {
    local want=$1 f=/proc/sys/vm/nr_hugepages
    local total free
    total=$(cat $f)
    free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
    VUISO_HUGEPAGES_BEFORE=$total
    VUISO_HUGEPAGES_ADDED=0
    if [ "$free" -lt "$want" ]; then
        echo $((total + want - free)) >$f 2>/dev/null
        VUISO_HUGEPAGES_ADDED=$(($(cat $f) - total))
    fi
    free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
    [ "$free" -ge "$want" ]
}

# Gives back what reserve_hugepages added (the pages still in use stay).
release_hugepages() {
    [ "${VUISO_HUGEPAGES_ADDED:-0}" -gt 0 ] || return 0
    echo "$VUISO_HUGEPAGES_BEFORE" >/proc/sys/vm/nr_hugepages 2>/dev/null
    VUISO_HUGEPAGES_ADDED=0
}
