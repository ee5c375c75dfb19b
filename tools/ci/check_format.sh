#!/usr/bin/env bash
# Checks that every C++ file of the project (*.cpp, *.hpp: tracked, or new and not ignored)
# is formatted as .clang-format says. Prints the offending files; exits non-zero if any.
# Fix with: clang-format -i FILE...
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.cpp' '*.hpp' |
        LC_ALL=C sort -u | while read -r f; do [[ -f $f ]] && echo "$f"; done)
else
    mapfile -t files < <(find . -path './build*' -prune -o -path './subprojects' -prune -o \
        \( -name '*.cpp' -o -name '*.hpp' \) -print | sed 's|^\./||' | LC_ALL=C sort)
fi
if [[ ${#files[@]} -eq 0 ]]; then
    echo "format: no C++ file found"
    exit 1
fi

bad=()
for f in "${files[@]}"; do
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [[ ${#bad[@]} -gt 0 ]]; then
    echo "format: ${#bad[@]} of ${#files[@]} files are not clang-formatted (clang-format -i FILE):"
    printf '    %s\n' "${bad[@]}"
    exit 1
fi
echo "format: ${#files[@]} files clang-formatted"
