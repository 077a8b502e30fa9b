#!/usr/bin/env bash
# Launches Tailor as an SPMD job under Open MPI's mpirun: one rank per GPU (or per CPU process).
#   launch/mpirun.sh -np 4 build/tailor train configs/quickstart.yaml parallel.tensor=2
#   launch/mpirun.sh -np 16 --hostfile hosts build/tailor train cfg.yaml   # several nodes
#   launch/mpirun.sh -np 16 -npernode 8 --host n1,n2 tailor train cfg.yaml  # the same, no hostfile
# `tailor` alone (no path) means the binary of the default build (build/tailor, else build-cpu/tailor).
# Every argument is mpirun's; the first one that names a program starts the program's own.
#
# What it adds to mpirun:
#  - --allow-run-as-root when run as root; --oversubscribe when the ranks per node exceed this
#    node's cores (CPU test jobs on a small machine);
#  - CPU threads per rank = max(1, cores / ranks per node) for OpenMP (Tailor computes the same
#    from OMPI_COMM_WORLD_LOCAL_SIZE; runtime.threads overrides). Ranks per node: -npernode /
#    --map-by ppr:N:node when given, else -np divided over the hosts of --hostfile / --host, or
#    over the nodes of the Slurm allocation it runs in, else -np;
#  - --bind-to none when a rank runs several threads and no --bind-to / --map-by is given (Open
#    MPI would otherwise pin each of 1-2 ranks to one core, and all its threads with it);
#  - GPU binding by local rank: every rank starts through launch/bind-gpu.sh, which keeps
#    CUDA_VISIBLE_DEVICES to the one GPU of index OMPI_COMM_WORLD_LOCAL_RANK when the rank sees
#    several (one rank per GPU: -np = GPUs per node x nodes). TAILOR_GPU_BIND=0 turns it off;
#  - --quiet and a report-child-status that keeps the first failing rank's exit code, so a bad
#    input still exits 2 and a stop request exits 3. SIGUSR1 sent to this script's pid (it execs
#    mpirun) is forwarded by mpirun to every rank: each saves a checkpoint and the job exits 3.
#
# Environment exported to every rank (on every node): the caller's NCCL_*, TAILOR_*, UCX_*, FI_*
# (libfabric, e.g. AWS EFA) and OMP_* variables, PATH and LD_LIBRARY_PATH. (OMPI_MCA_* variables
# configure mpirun itself and reach the ranks without help.) Often useful on GPU clusters:
#   NCCL_DEBUG=INFO              print NCCL's topology, transports and errors (WARN: errors only)
#   NCCL_SOCKET_IFNAME=ib0|eth0  the interface NCCL bootstraps over (and its TCP transport uses)
#   NCCL_IB_HCA=mlx5             which InfiniBand/RoCE adapters NCCL may use
#   NCCL_IB_DISABLE=1            no InfiniBand: TCP sockets between nodes (slow, for debugging)
#   OMPI_MCA_btl_tcp_if_include=eth0, OMPI_MCA_oob_tcp_if_include=eth0
#                                the interface Open MPI's own traffic (bootstrap, CPU collectives)
#                                uses when nodes have several
#   UCX_NET_DEVICES=mlx5_0:1     the adapter Open MPI's UCX transport uses
# Multi-node: the nodes need passwordless ssh between them (or run inside a Slurm allocation,
# where mpirun starts its daemons through srun), the same paths to tailor and the data, and
# Open MPI of the same version; see docs/slurm.md.
set -euo pipefail

np=""
args=("$@")
npernode=""
hosts_file=""
host_list=""
user_binding=0
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    -np|-n|--np|-c) np="${args[i+1]:-}" ;;
    -npernode|--npernode|-N) npernode="${args[i+1]:-}" ;;
    -hostfile|--hostfile|-machinefile|--machinefile|--default-hostfile) hosts_file="${args[i+1]:-}" ;;
    -H|-host|--host) host_list="${args[i+1]:-}" ;;
    --bind-to|-bind-to|--map-by|-map-by|--cpus-per-proc|--cpus-per-rank) user_binding=1 ;;
  esac
  if [[ "${args[i]}" =~ ^-?-map-by$ && "${args[i+1]:-}" =~ ^ppr:([0-9]+):node ]]; then
    npernode="${BASH_REMATCH[1]}"
  fi
done
if [[ -z "$np" ]]; then
  echo "launch/mpirun.sh: give the number of ranks with -np N" >&2
  exit 2
fi
if ! [[ "$np" =~ ^[0-9]+$ ]] || [[ "$np" -lt 1 ]]; then
  echo "launch/mpirun.sh: -np must be a positive integer (got '$np')" >&2
  exit 2
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The program: the first argument that is not an option or an option's value. Options that take
# one value are listed; `--mca`/`-x`-like pairs are skipped as such. Only a name that resolves to
# an executable counts, so an unlisted option with a value never makes us wrap the wrong word.
prog_index=-1
for ((i = 0; i < ${#args[@]}; i++)); do
  a="${args[i]}"
  case "$a" in
    --mca|-mca|--gmca|-gmca) i=$((i + 2)); continue ;;
    -np|-n|--np|-c|-npernode|--npernode|-N|-hostfile|--hostfile|-machinefile|--machinefile|\
    --default-hostfile|-H|-host|--host|-x|--bind-to|-bind-to|--map-by|-map-by|--rank-by|-rank-by|\
    --cpus-per-proc|--cpus-per-rank|-wdir|--wdir|-wd|--prefix|--output-filename|-output-filename|\
    --timeout|--app|--tune|--am|--preload-files|--path|--stdin)
      i=$((i + 1)); continue ;;
    -*) continue ;;
  esac
  prog_index=$i
  break
done

# Resolve a bare `tailor` to the repository's build.
for ((i = 0; i < ${#args[@]}; i++)); do
  if [[ "${args[i]}" == "tailor" ]]; then
    for candidate in "$repo/build/tailor" "$repo/build-cpu/tailor"; do
      if [[ -x "$candidate" ]]; then args[i]="$candidate"; break; fi
    done
    break
  fi
done

# GPU binding by local rank (see launch/bind-gpu.sh): put the wrapper in front of the program.
if (( prog_index >= 0 )) && [[ "${TAILOR_GPU_BIND:-1}" != 0 ]] &&
   command -v -- "${args[prog_index]}" >/dev/null 2>&1; then
  args=("${args[@]:0:prog_index}" "$repo/launch/bind-gpu.sh" "${args[@]:prog_index}")
fi

# Ranks per node: what the threads and --oversubscribe are computed from.
nodes=1
if [[ -n "$hosts_file" && -r "$hosts_file" ]]; then
  nodes=$(sed -e 's/#.*//' "$hosts_file" | awk 'NF { print $1 }' | sort -u | wc -l)
elif [[ -n "$host_list" ]]; then
  nodes=$(tr ',' '\n' <<< "$host_list" | sed -e 's/:.*//' | awk 'NF' | sort -u | wc -l)
elif [[ -n "${SLURM_JOB_NUM_NODES:-}" ]]; then
  nodes=$SLURM_JOB_NUM_NODES
fi
(( nodes < 1 )) && nodes=1
if [[ "$npernode" =~ ^[0-9]+$ ]] && (( npernode > 0 )); then
  per_node=$npernode
else
  per_node=$(( (np + nodes - 1) / nodes ))
fi

cores=$(nproc)
threads=$(( cores / per_node ))
(( threads < 1 )) && threads=1

extra=(--quiet -x OMP_NUM_THREADS="$threads" -x OPENBLAS_NUM_THREADS=1)
[[ $(id -u) -eq 0 ]] && extra+=(--allow-run-as-root)
(( per_node > cores )) && extra+=(--oversubscribe)
(( threads > 1 && user_binding == 0 )) && extra+=(--bind-to none)
for var in $(compgen -e | grep -E '^(NCCL_|TAILOR_|UCX_|FI_)' || true); do extra+=(-x "$var"); done
for var in $(compgen -e | grep -E '^OMP_' | grep -v '^OMP_NUM_THREADS$' || true); do extra+=(-x "$var"); done
extra+=(-x PATH)
[[ -n "${LD_LIBRARY_PATH:-}" ]] && extra+=(-x LD_LIBRARY_PATH)

exec mpirun "${extra[@]}" "${args[@]}"
