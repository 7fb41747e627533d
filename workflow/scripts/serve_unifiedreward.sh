#!/usr/bin/env bash
# Serve the UnifiedReward judge (UnifiedReward-7b-v1.5) with sglang behind an OpenAI-compatible API
# on 127.0.0.1, as Flow-GRPO does (chatml-llava template, --enable-p2p-check, 0.85 of GPU memory);
# wait until GET /v1/models answers, write a ready file, then keep serving until stopped.
# SIGTERM/SIGINT (or the server dying) stop the server and remove the ready file.
#
# Usage (on a GPU node; python = $UNIFIEDREWARD_PYTHON, else envs/unifiedreward/bin/python when
# that env of workflow/envs/unifiedreward.yml exists, else the python on PATH):
#   workflow/scripts/serve_unifiedreward.sh --model-path DIR [--port 17140] [--ready-file FILE]
#       [--timeout 1800] [--served-model-name UnifiedReward-7b-v1.5] [--mem-fraction-static 0.85]
#       [--api-key KEY] [-- extra sglang.launch_server arguments]
#   workflow/scripts/serve_unifiedreward.sh DIR [PORT] [options]   (the same, positionally)
# The client (eval/unifiedreward.py) then uses url http://127.0.0.1:PORT/v1 and the served name.
# Get the model: huggingface-cli download CodeGoat24/UnifiedReward-7b-v1.5 --local-dir DIR
set -euo pipefail

PYTHON=${UNIFIEDREWARD_PYTHON:-}
if [[ -z $PYTHON ]]; then
    if [[ -x envs/unifiedreward/bin/python ]]; then PYTHON=envs/unifiedreward/bin/python; else PYTHON=python; fi
fi
MODEL_PATH=""
PORT=17140
PORT_GIVEN=""
READY_FILE=""
TIMEOUT=1800
SERVED_NAME=UnifiedReward-7b-v1.5
MEM_FRACTION=0.85
API_KEY=""
EXTRA=()

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "serve_unifiedreward.sh: $*" >&2; exit 2; }

while (($#)); do
    case $1 in
        --model-path) MODEL_PATH=${2:?}; shift 2 ;;
        --port) PORT=${2:?}; PORT_GIVEN=1; shift 2 ;;
        --ready-file) READY_FILE=${2:?}; shift 2 ;;
        --timeout) TIMEOUT=${2:?}; shift 2 ;;
        --served-model-name) SERVED_NAME=${2:?}; shift 2 ;;
        --mem-fraction-static) MEM_FRACTION=${2:?}; shift 2 ;;
        --api-key) API_KEY=${2:?}; shift 2 ;;
        --) shift; EXTRA=("$@"); break ;;
        -h|--help) usage; exit 0 ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) if [[ -z $MODEL_PATH ]]; then MODEL_PATH=$1; elif [[ -z $PORT_GIVEN ]]; then PORT=$1; PORT_GIVEN=1;
           else die "unexpected argument $1 (see --help)"; fi; shift ;;
    esac
done

[[ -n $MODEL_PATH ]] || die "--model-path DIR is required (get it: huggingface-cli download CodeGoat24/UnifiedReward-7b-v1.5 --local-dir DIR)"
[[ -f $MODEL_PATH/config.json ]] || die "$MODEL_PATH has no config.json; it should be the UnifiedReward-7b-v1.5 folder (get it: huggingface-cli download CodeGoat24/UnifiedReward-7b-v1.5 --local-dir DIR)"
"$PYTHON" -c "import sglang" 2>/dev/null || die "$PYTHON cannot import sglang; create the env: conda env create -p envs/unifiedreward -f workflow/envs/unifiedreward.yml (found there from the project root), or set UNIFIEDREWARD_PYTHON to the python of an env that has it"
READY_FILE=${READY_FILE:-${TMPDIR:-/tmp}/unifiedreward_${PORT}.ready}
URL=http://127.0.0.1:${PORT}/v1

models_answer() {
    "$PYTHON" - "$URL/models" "$API_KEY" >/dev/null 2>&1 <<'PY'
import sys, urllib.request
request = urllib.request.Request(sys.argv[1])
if sys.argv[2]:
    request.add_header("Authorization", "Bearer " + sys.argv[2])
with urllib.request.urlopen(request, timeout=5) as response:
    sys.exit(0 if response.status == 200 else 1)
PY
}

models_answer && die "something already answers at $URL; stop it or choose another --port"

SERVER_ARGS=(--model-path "$MODEL_PATH" --host 127.0.0.1 --port "$PORT" --served-model-name "$SERVED_NAME"
    --chat-template chatml-llava --enable-p2p-check --mem-fraction-static "$MEM_FRACTION")
if [[ -n $API_KEY ]]; then SERVER_ARGS+=(--api-key "$API_KEY"); fi
rm -f "$READY_FILE"
echo "starting: $PYTHON -m sglang.launch_server ${SERVER_ARGS[*]} ${EXTRA[*]}" >&2
"$PYTHON" -m sglang.launch_server "${SERVER_ARGS[@]}" "${EXTRA[@]}" &
SERVER=$!

stop_server() {
    rm -f "$READY_FILE"
    kill -0 "$SERVER" 2>/dev/null || return 0
    kill -TERM "$SERVER"
    for _ in $(seq 60); do kill -0 "$SERVER" 2>/dev/null || return 0; sleep 0.5; done
    kill -KILL "$SERVER" 2>/dev/null || true
}
trap stop_server EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

deadline=$((SECONDS + TIMEOUT))
until models_answer; do
    kill -0 "$SERVER" 2>/dev/null || { wait "$SERVER" && code=0 || code=$?; echo "serve_unifiedreward.sh: the server exited (code $code) before $URL/models answered; see its output above" >&2; exit 1; }
    ((SECONDS < deadline)) || { echo "serve_unifiedreward.sh: $URL/models did not answer within $TIMEOUT s (raise --timeout if the model loads slowly)" >&2; exit 1; }
    sleep 1
done
printf 'url=%s\nmodel=%s\npid=%s\n' "$URL" "$SERVED_NAME" "$SERVER" >"$READY_FILE"
echo "UnifiedReward judge ready at $URL (model $SERVED_NAME); ready file $READY_FILE" >&2
wait "$SERVER"
