#!/usr/bin/env bash
# One training run over the nodes of a SLURM job (the train rule with resources.train.nodes > 1):
# srun starts one `accelerate launch` per node; the launcher of node 0 (the first host of the job)
# holds process 0 and the static rendezvous at that host's address, the others connect to it, and
# the NODES x PROCS processes form one torch.distributed group (NCCL on GPUs, gloo on CPUs).
# srun --kill-on-bad-exit: a node whose launcher dies ends the whole step (no one waits in a collective).
#
# Usage (inside the job's allocation; the rest of the line goes to accelerate launch):
#   workflow/scripts/train_nodes.sh NODES PROCS_PER_NODE CPUS_PER_NODE GPUS_PER_NODE -m guard.train ARGS...
set -euo pipefail
if [[ $# -lt 5 ]]; then
    echo "usage: $0 NODES PROCS_PER_NODE CPUS_PER_NODE GPUS_PER_NODE -m MODULE ARGS..." >&2
    exit 2
fi
nodes=$1 procs=$2 cpus=$3 gpus=$4
shift 4
if [[ -z ${SLURM_JOB_ID:-} ]]; then
    echo "error: resources.train.nodes = $nodes needs a SLURM job: run the workflow with" \
         "--workflow-profile workflow/profiles/slurm (or set resources.train.nodes: 1)" >&2
    exit 2
fi
# the rendezvous port, free on this host (the batch step runs on the job's first node)
port=$(python -c 'import socket; s = socket.socket(); s.bind(("", 0)); print(s.getsockname()[1])')
gres=()
if [[ $gpus -gt 0 ]]; then gres=(--gpus-per-node "$gpus"); fi
# shellcheck disable=SC2016  # expanded by each task's shell, where srun sets SLURM_NODEID and the node list
exec srun --nodes "$nodes" --ntasks "$nodes" --ntasks-per-node 1 --cpus-per-task "$cpus" "${gres[@]}" \
    --kill-on-bad-exit=1 bash -c '
    first=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -1)
    address=$(scontrol show node "$first" | grep -o "NodeAddr=[^ ]*" | cut -d= -f2)
    echo "train_nodes.sh: node $SLURM_NODEID ($SLURMD_NODENAME) of $0, rendezvous at $address:$1" >&2
    # SLURM signals every process of the step: the agent ignores SIGTERM and waits for its workers to checkpoint
    trap "" TERM
    export PET_SIGNALS_TO_HANDLE=SIGINT,SIGHUP,SIGQUIT
    exec accelerate launch --multi_gpu --num_machines "$0" --machine_rank "$SLURM_NODEID" \
        --main_process_ip "$address" --main_process_port "$1" --num_processes $(($0 * $2)) \
        --mixed_precision no --dynamo_backend no "${@:3}"' "$nodes" "$port" "$procs" "$@"
