#!/bin/bash
# Runs each line of a queue file (name followed by diagnose_mnist5k.py flags)
# one after the other on CPU core 1, skipping those already done.
# Usage: examples/diagnose/queue.sh QUEUE_FILE
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python}  # the interpreter of the virtual environment
while read -r name flags; do
  [ -z "$name" ] && continue
  case "$name" in \#*) continue;; esac
  out=runs/diag/$name
  [ -f "$out.json" ] && continue
  echo "$(date +%T) start $name $flags"
  PYTHONPATH=$PWD taskset -c 1 $PY examples/diagnose/diagnose_mnist5k.py $flags --output=$out \
    > "$out.log" 2>&1
  rc=$?
  echo "$(date +%T) done $name rc=$rc $(tail -1 "$out.log")"
done < "$1"
