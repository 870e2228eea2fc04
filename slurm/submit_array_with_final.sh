#!/bin/bash
# Submit the array job and, depending on all of its tasks, the final backup job.
#
#   slurm/submit_array_with_final.sh [SBATCH OPTIONS...] -- COMMAND [ARGS...]
#   slurm/submit_array_with_final.sh --array=0-99%10 --account=proj -- ./work.sh
#
# All SBATCH OPTIONS go to the array; --account, --partition, --qos and --clusters
# also go to the final job. The array's tasks are told (DBBACKUP_FINAL=0) not to
# submit a final job of their own.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

usage() {
    echo "usage: $0 [SBATCH OPTIONS...] -- COMMAND [ARGS...]" >&2
    exit 2
}

array_options=()
final_options=()
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
    array_options+=("$1")
    case "$1" in
        --account=* | --partition=* | --qos=* | --clusters=* | -A?* | -p?* | -q?* | -M?*)
            final_options+=("$1") ;;
        --account | --partition | --qos | --clusters | -A | -p | -q | -M)
            [ "$#" -ge 2 ] || usage
            final_options+=("$1" "$2")
            array_options+=("$2")
            shift ;;
    esac
    shift
done
[ "$#" -ge 2 ] || usage
shift

array=$(DBBACKUP_FINAL=0 sbatch --parsable ${array_options[@]+"${array_options[@]}"} "$here/job_array.sbatch" "$@")
array=${array%%;*}
final=$(sbatch --parsable ${final_options[@]+"${final_options[@]}"} --dependency=afterany:"$array" \
    "$here/final_backup.sbatch" "$array")
final=${final%%;*}
echo "array job $array, final backup job $final"
