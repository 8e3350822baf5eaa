#!/bin/sh
d="$FAKE_GH_DIR"
echo "$*" >> "$d/calls"
if [ "$1 $2" = "auth status" ]; then
  [ -e "$d/auth-fails" ] && { echo "You are not logged into any GitHub hosts" >&2; exit 1; }
  exit 0
fi
[ "$1 $2" = "pr create" ] || { echo "unexpected: $*" >&2; exit 64; }
shift 2
head=; base=; title=; body=
while [ $# -gt 0 ]; do
  case "$1" in
    --head) head=$2 ;;
    --base) base=$2 ;;
    --title) title=$2 ;;
    --body-file) body=$2 ;;
    *) echo "unexpected argument $1" >&2; exit 64 ;;
  esac
  shift 2 || { echo "missing value" >&2; exit 64; }
done
[ -n "$head" ] && [ -n "$base" ] && [ -n "$title" ] && [ -f "$body" ] || { echo "missing argument" >&2; exit 64; }
n=$(($(cat "$d/count" 2>/dev/null || echo 0) + 1)); echo $n > "$d/count"
printf 'head=%s base=%s title=%s\n' "$head" "$base" "$title" >> "$d/prs"
cp "$body" "$d/body-$n.md"
echo "https://github.com/example/repo/pull/$n"
