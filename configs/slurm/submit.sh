#!/usr/bin/env bash
# submit.sh: fetch a URL list as N shards on a Slurm cluster, then merge.
#
#   configs/slurm/submit.sh urls.txt out 8 [trawl flags...]
#
# submits trawl-shards.sbatch as an array of N tasks (--array=0-N-1) and
# trawl-merge.sbatch with --dependency=afterok on the array, and prints the
# two job IDs: "ARRAYJOBID MERGEJOBID". Slurm's logs go to out/ beside the
# shards. sbatch's own settings come from SBATCH_* variables
# (SBATCH_PARTITION, SBATCH_ACCOUNT, SBATCH_TIMELIMIT, ...); trawl's from
# the flags after N, TRAWL_CONFIG or TRAWL_* variables (see
# trawl-shards.sbatch). LIST and OUTDIR must be on a file system that every
# node sees, since a requeued task may run on another node. The pipeline
# succeeded when the merge job ends COMPLETED: `scontrol show job MERGEJOBID`
# (or `sacct -j MERGEJOBID`) says so; FAILED means indexes were missing, and
# CANCELLED (DependencyNeverSatisfied) that a shard task failed.
set -euo pipefail

if [ $# -lt 3 ] || ! [ "$3" -ge 1 ] 2>/dev/null; then
  echo "usage: submit.sh LIST OUTDIR N [trawl flags...]" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
list=$1 out=$2 n=$3
shift 3
mkdir -p "$out"
array=$(sbatch --parsable --array="0-$((n - 1))" --output="$out/slurm-%A_%a.log" \
  "$here/trawl-shards.sbatch" "$list" "$out" "$@")
array=${array%%;*} # --parsable prints JOBID or JOBID;CLUSTER
merge=$(sbatch --parsable --dependency="afterok:$array" --kill-on-invalid-dep=yes \
  --output="$out/slurm-merge-%j.log" "$here/trawl-merge.sbatch" "$out" "$n")
echo "${array} ${merge%%;*}"
