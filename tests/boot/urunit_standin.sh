#!/bin/sh
# urunit stand-in for the boot tests: written by urunix from urunit's
# documented behaviour (github.com/nubificus/urunit README and the urunc
# facts page), not from its code. Runs as the guest's init (PID 1) under
# busybox sh:
#  - the kernel hands init the words after `--` as arguments; the first is
#    the program. urunc wraps an argument holding spaces in '...': the first
#    argument that opens a quote (' or ") and does not close it is joined
#    with the following words up to the one that closes it, and everything
#    after that group is dropped (one multi-word argument at most);
#  - URUNIT_CONFIG (a kernel parameter, so in init's environment) names the
#    config: lines UES..UEE are the program's whole environment, UCS..UCE
#    hold UID:, GID:, WD:; UBS..UBE (block volumes) are not handled here;
#  - the program runs as a child; init stays PID 1, waits for it, then
#    reboots the machine (qemu -no-reboot exits).
/bin/busybox mkdir -p /proc /sys
/bin/busybox mount -t proc proc /proc 2>/dev/null
n=0 q="" buf="" grouped=""
add() { n=$((n + 1)); eval "a_$n=\$1"; }
for arg do
  if [ -n "$q" ]; then
    [ -z "$arg" ] && continue
    last=${arg#"${arg%?}"}
    prev=${arg%?}; prev=${prev#"${prev%?}"}
    if [ "$last" = "$q" ] && { [ ${#arg} -eq 1 ] || [ "$prev" != "$q" ]; }; then
      buf="$buf ${arg%?}"; grouped=1; break
    fi
    buf="$buf $arg"; continue
  fi
  first=${arg%"${arg#?}"}
  if [ "$first" = "'" ] || [ "$first" = '"' ]; then
    last=${arg#"${arg%?}"}
    if [ "$last" = "$first" ]; then add "$arg"; continue; fi
    q=$first; buf=${arg#?}; continue
  fi
  add "$arg"
done
[ -n "$q" ] && add "$buf"
[ "$n" -gt 0 ] || { echo "urunit-standin: no application" >&2; exit 1; }

e=0 uid=0 gid=0 wd="" conf=""
if [ -n "$URUNIT_CONFIG" ]; then
  /bin/busybox mount -t sysfs sysfs /sys 2>/dev/null
  conf=1 sect=""
  while IFS= read -r line || [ -n "$line" ]; do
    case "$sect:$line" in
      :UES) sect=env ;; env:UEE) sect="" ;;
      :UCS) sect=cfg ;; cfg:UCE) sect="" ;;
      :UBS) sect=blk ;; blk:UBE) sect="" ;;
      env:*) e=$((e + 1)); eval "e_$e=\$line" ;;
      cfg:UID:*) uid=${line#UID:} ;;
      cfg:GID:*) gid=${line#GID:} ;;
      cfg:WD:*) wd=${line#WD:} ;;
    esac
  done < "$URUNIT_CONFIG"
fi

cmd='"$a_1"'; i=2
while [ $i -le $n ]; do cmd="$cmd \"\$a_$i\""; i=$((i + 1)); done
if [ -n "$conf" ]; then
  envs=""; i=1
  while [ $i -le $e ]; do envs="$envs \"\$e_$i\""; i=$((i + 1)); done
  run="/bin/busybox env -i $envs $cmd"
  [ "$uid:$gid" = "0:0" ] || run="/bin/busybox chpst -u :$uid:$gid $run"
else
  run="$cmd"
fi
(
  if [ -n "$wd" ]; then cd "$wd" || exit 1; fi
  eval "exec $run"
) &
wait $!
echo "urunit-standin: app exited with $?"
/bin/busybox sync
/bin/busybox reboot -f
