#!/usr/bin/env bash
# Syntax check of the PowerShell scripts in contrib/windows/ without Windows: parse each
# with the tree-sitter PowerShell grammar (from PyPI, in a throwaway venv) and fail on
# any error node. This catches unbalanced braces, quotes and parentheses; it does not run
# the script, so cmdlet names, icacls arguments and the ACL it sets stay unverified here.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$(mktemp -d)
trap 'rm -rf "$venv"' EXIT
if ! python3 -m venv "$venv" 2>/dev/null; then
    # Debian's python3 needs python3-venv for this.
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    rm -rf "$venv" && mkdir -p "$venv"
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check tree-sitter==0.26.1 tree-sitter-powershell==0.26.4
"$venv/bin/python" - "$root"/contrib/windows/*.ps1 <<'PY'
import sys
import tree_sitter_powershell
from tree_sitter import Language, Parser

parser = Parser(Language(tree_sitter_powershell.language()))
assert parser.parse(b'if ($x) { "a }\n').root_node.has_error, "the grammar must reject a broken script"
failed = False
for path in sys.argv[1:]:
    src = open(path, "rb").read()
    errors = []
    stack = [parser.parse(src).root_node]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            line = node.start_point[0] + 1
            errors.append(f"{path}:{line}: {src[node.start_byte:node.end_byte][:60]!r}")
        stack.extend(node.children)
    for e in errors:
        print("powershell parse:", e, file=sys.stderr)
    failed |= bool(errors)
    print(f"powershell parse: {'FAILED' if errors else 'OK'} {path}")
sys.exit(1 if failed else 0)
PY
