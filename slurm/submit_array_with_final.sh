#!/bin/bash
# Submit the array job and, depending on all of its tasks, the final backup job.
#
#   slurm/submit_array_with_final.sh COMMAND [ARGS...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
array=$(sbatch --parsable "$here/job_array.sbatch" "$@")
array=${array%%;*}
final=$(sbatch --parsable --dependency=afterany:"$array" "$here/final_backup.sbatch")
echo "array job $array, final backup job $final"
