#!/usr/bin/env bash
# Static analysis of contracts/*.sol with slither (slither-analyzer from the package registry),
# driven through the solcjs shim scripts/solc: slither gets a standard-JSON input (sources
# inline, outputSelection with the AST) and --compile-force-framework solc-json.
#
# slither-analyzer 0.11.6 pins web3<8 while the project pins web3==8.0.0, so slither lives in its
# own virtual environment (build/slither-venv, created on first use) and never touches .venv.
#
#   scripts/slither.sh            # human-readable findings; exit 1 on any medium/high finding
#   SLITHER_JSON=out.json scripts/slither.sh   # also write slither's JSON report
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"
VENV="$ROOT/build/slither-venv"
PIN="slither-analyzer==0.11.6"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/slither" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet "$PIN"
fi

INPUT="$ROOT/build/slither-input.json"
"$VENV/bin/python" - "$INPUT" <<'PY'
import json, pathlib, sys
root = pathlib.Path.cwd()
sources = {f"contracts/{p.name}": {"content": p.read_text()} for p in sorted((root / "contracts").glob("*.sol"))}
settings = {
    "evmVersion": "prague",
    "optimizer": {"enabled": True, "runs": 200},
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode", "evm.deployedBytecode"], "": ["ast"]}},
}
pathlib.Path(sys.argv[1]).write_text(json.dumps({"language": "Solidity", "sources": sources, "settings": settings}))
PY

ARGS=("$INPUT" --compile-force-framework solc-json --solc "$ROOT/scripts/solc"
      --exclude-informational --exclude-optimization --exclude-low --fail-medium)
if [ -n "${SLITHER_JSON:-}" ]; then ARGS+=(--json "$SLITHER_JSON"); fi
exec "$VENV/bin/slither" "${ARGS[@]}"
