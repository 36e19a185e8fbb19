#!/bin/sh
# Runs the three iris modules by hand, without Atelier, chaining their outputs through ATELIER_INPUTS the way
# the local executor would. Each prints a warning that progress is not reported: there is no ATELIER_PROGRESS_FD.
set -eu
cd "$(dirname "$0")"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ATELIER_PARAMS="${PREPARE_PARAMS:-{\}}" ATELIER_OUTPUT_DIR="$out/prepare" node prepare/main.mjs
ATELIER_PARAMS="${TRAIN_PARAMS:-{\}}" ATELIER_INPUTS="{\"prepare\":$(cat "$out/prepare/outputs.json")}" \
  ATELIER_OUTPUT_DIR="$out/train" node train/main.mjs
ATELIER_PARAMS="${EVALUATE_PARAMS:-{\}}" \
  ATELIER_INPUTS="{\"prepare\":$(cat "$out/prepare/outputs.json"),\"train\":$(cat "$out/train/outputs.json")}" \
  ATELIER_OUTPUT_DIR="$out/evaluate" node evaluate/main.mjs
