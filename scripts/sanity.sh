#!/usr/bin/env bash
# ansible-test sanity on the collection as Galaxy would lay it out (make sanity, part of make lint).
# ansible-test wants the tree at ansible_collections/<namespace>/<name>: the tracked files of the
# working tree are copied there (a throwaway git repository, so that nothing untracked such as
# .venv is read). Exceptions: tests/sanity/ignore-2.19.txt, each with its reason.
#
# Skipped tests, and why: ansible-test runs these in virtualenvs it bootstraps with a pip
# installer downloaded from its own host, which this workplace cannot reach; and each is
# covered otherwise or has nothing to check here:
#   pep8, pylint             ruff and mypy (strict) in make lint
#   yamllint                 yamllint -s in make lint
#   validate-modules, ansible-doc, import, runtime-metadata, action-plugin-docs
#                            no modules; the filter plugins' documentation is read by
#                            ansible-doc in tests/unit/plugins (offline), their code by ruff,
#                            mypy (strict) and their unit tests
#   changelog                antsibull-changelog lint in make lint
#   pslint                   no PowerShell
#   (the shellcheck test)    run here directly on every tracked shell script (below), the
#                            repository's scripts included, not only the collection's
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(realpath "${PYTHON:-.venv/bin/python}")
ansible_test=$(realpath "${ANSIBLE_TEST:-.venv/bin/ansible-test}")
namespace=$(sed -n 's/^namespace: *//p' galaxy.yml)
name=$(sed -n 's/^name: *//p' galaxy.yml)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tree="$work/ansible_collections/$namespace/$name"
mkdir -p "$tree"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [ -e "$f" ] || [ -L "$f" ] || continue   # deleted in the working tree
  printf '%s\0' "$f"
done | tar --null -T - -cf - | tar -xf - -C "$tree"
git -C "$tree" init -q
git -C "$tree" add -A
git -C "$tree" -c user.email=sanity@localhost -c user.name=sanity commit -qm sanity
pyver=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
skip=()
for test in pep8 pylint yamllint validate-modules ansible-doc import runtime-metadata action-plugin-docs \
            changelog pslint shellcheck; do
  skip+=(--skip-test "$test")
done
if ! command -v shellcheck >/dev/null 2>&1; then
  echo "shellcheck not found: make host installs it (apt-get install shellcheck)" >&2
  exit 1
fi
git ls-files -z '*.sh' | xargs -0 shellcheck
cd "$tree"
"$ansible_test" sanity --python "$pyver" "${skip[@]}" --color no
