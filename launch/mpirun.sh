#!/usr/bin/env bash
# Launches Tailor as an SPMD job under Open MPI's mpirun: one rank per GPU (or per CPU process).
#   launch/mpirun.sh -np 4 build/tailor train configs/quickstart.yaml parallel.tensor=2
#   launch/mpirun.sh -np 16 --hostfile hosts build/tailor train cfg.yaml   # several nodes
# `tailor` alone (no path) means the binary of the default build (build/tailor, else build-cpu/tailor).
#
# What it adds to mpirun:
#  - --allow-run-as-root when run as root; --oversubscribe when -np exceeds this node's cores
#    (CPU test jobs on a small machine);
#  - CPU threads per rank = max(1, cores / ranks on the node) for Tailor's pool and OpenMP
#    (Tailor computes the same from OMPI_COMM_WORLD_LOCAL_SIZE; runtime.threads overrides);
#  - (GPU binding by local rank arrives with the CUDA backend);
#  - --quiet and a report-child-status that keeps the first failing rank's exit code, so a bad
#    input still exits 2 and a stop request exits 3.
# NCCL and MPI environment variables set by the caller (NCCL_DEBUG, NCCL_SOCKET_IFNAME, ...) are
# exported to every rank.
set -euo pipefail

np=""
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    -np|-n|--np) np="${args[i+1]:-}" ;;
  esac
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
# Resolve a bare `tailor` to the repository's build.
for ((i = 0; i < ${#args[@]}; i++)); do
  if [[ "${args[i]}" == "tailor" ]]; then
    for candidate in "$repo/build/tailor" "$repo/build-cpu/tailor"; do
      if [[ -x "$candidate" ]]; then args[i]="$candidate"; break; fi
    done
    break
  fi
done

cores=$(nproc)
threads=$(( cores / np ))
(( threads < 1 )) && threads=1

extra=(--quiet -x OMP_NUM_THREADS="$threads" -x OPENBLAS_NUM_THREADS=1)
[[ $(id -u) -eq 0 ]] && extra+=(--allow-run-as-root)
(( np > cores )) && extra+=(--oversubscribe)
for var in $(compgen -e | grep -E '^(NCCL_|TAILOR_|UCX_)' || true); do extra+=(-x "$var"); done

exec mpirun "${extra[@]}" "${args[@]}"
