#!/usr/bin/env bash
# One GPU per rank: runs PROGRAM with CUDA_VISIBLE_DEVICES narrowed to the GPU of this rank's
# local rank (its index among the ranks on this node), when the rank sees more than one GPU.
#   bind-gpu.sh PROGRAM [ARGS...]       (launch/mpirun.sh and the Slurm templates put it in front
#                                        of `tailor` on every rank; it ends in `exec PROGRAM`)
#
# - The local rank comes from OMPI_COMM_WORLD_LOCAL_RANK (mpirun, also inside a Slurm allocation,
#   where SLURM_LOCALID would be the orted's), else SLURM_LOCALID (srun), else MPI_LOCALRANKID
#   (MPICH/Hydra), else 0.
# - The GPUs a rank sees: CUDA_VISIBLE_DEVICES when it is set (indices or GPU-UUIDs, as Slurm's
#   --gpus/--gres sets it), else the /dev/nvidia<N> device files of this node. Local rank i gets the
#   i-th of them (modulo their number, so more ranks than GPUs share them round-robin).
# - With zero or one visible GPU nothing changes: Slurm already bound the task (--gpus-per-task=1,
#   --gpu-bind), or it is a CPU job.
# - TAILOR_GPU_BIND=0 turns it off (the rank then sees every GPU); TAILOR_GPU_BIND_VERBOSE=1
#   prints each rank's choice on stderr.
# Because it ends in exec, signals sent to the rank's pid reach PROGRAM itself.

if [[ $# -lt 1 ]]; then
  echo "launch/bind-gpu.sh: usage: bind-gpu.sh PROGRAM [ARGS...]" >&2
  exit 2
fi

if [[ "${TAILOR_GPU_BIND:-1}" != 0 ]]; then
  local_rank=${OMPI_COMM_WORLD_LOCAL_RANK:-${SLURM_LOCALID:-${MPI_LOCALRANKID:-0}}}
  gpus=()
  if [[ -n "${CUDA_VISIBLE_DEVICES+set}" ]]; then
    case "$CUDA_VISIBLE_DEVICES" in
      ""|NoDevFiles) ;;
      *) IFS=, read -r -a gpus <<< "$CUDA_VISIBLE_DEVICES" ;;
    esac
  else
    shopt -s nullglob
    n=0
    for dev in /dev/nvidia[0-9]*; do
      [[ "$dev" =~ ^/dev/nvidia[0-9]+$ ]] && gpus+=("$n") && n=$((n + 1))
    done
    shopt -u nullglob
  fi
  if [[ ${#gpus[@]} -gt 1 && "$local_rank" =~ ^[0-9]+$ ]]; then
    export CUDA_VISIBLE_DEVICES="${gpus[local_rank % ${#gpus[@]}]}"
    if [[ "${TAILOR_GPU_BIND_VERBOSE:-0}" == 1 ]]; then
      echo "bind-gpu: host $(hostname -s) local rank $local_rank -> CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES (of ${#gpus[@]})" >&2
    fi
  fi
fi

exec "$@"
