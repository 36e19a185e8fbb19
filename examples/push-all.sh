#!/bin/sh
# Publishes every example module (each directory holding an atelier.module.yaml) and creates every example
# workflow. Uses ATELIER_URL / ATELIER_TOKEN like the CLI (on the control plane's machine it needs neither).
set -eu
cd "$(dirname "$0")/.."
atelier() { node server/cli/bin.js "$@"; }
for manifest in $(find examples -name atelier.module.yaml -not -path '*/node_modules/*' | sort); do
  atelier module push "$(dirname "$manifest")"
done
for workflow in $(find examples -name workflow.yaml -not -path '*/node_modules/*' | sort); do
  atelier workflow create "$workflow"
done
