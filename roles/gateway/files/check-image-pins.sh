#!/bin/sh
# Run in the gateway image's build, after apt-get update and before the install: fails, naming
# each one, when a pinned package version is not in the Debian archive (any more).
# Usage: check-image-pins name=version ...
missing=""
for pin in "$@"; do
  pkg=${pin%%=*}
  want=${pin#*=}
  have=$(apt-cache show "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | sort -u | tr '\n' ' ' | sed 's/ $//')
  case " $have " in
    *" $want "*) ;;
    *) missing="$missing
  $pkg=$want (the archive has: ${have:-no version of it})" ;;
  esac
done
if [ -n "$missing" ]; then
  echo "Pinned package versions that the Debian archive does not have:$missing
Move the pins to what the archive has now, then test them: make image-pins, make test
(README, Moving the image pins)." >&2
  exit 1
fi
echo "check-image-pins: all $# pinned versions are in the archive"
