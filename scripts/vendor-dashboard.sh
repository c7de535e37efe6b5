#!/usr/bin/env bash
# Fetch the dashboard's browser libraries from the npm registry into the package's static
# folder (run by hand when updating them; the files are committed, nothing is fetched at
# run time). Versions are pinned here.
set -euo pipefail
cd "$(dirname "$0")/.."
target=conveyor/monitoring/dashboard/static/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent htmx.org@2.0.11 uplot@1.6.32 >/dev/null)
tar -xzf "$work"/htmx.org-*.tgz -C "$work" && mv "$work/package" "$work/htmx"
tar -xzf "$work"/uplot-*.tgz -C "$work" && mv "$work/package" "$work/uplot"
cp "$work/htmx/dist/htmx.min.js" "$target/htmx.min.js"
cp "$work/htmx/LICENSE" "$target/htmx.LICENSE"
cp "$work/uplot/dist/uPlot.iife.min.js" "$work/uplot/dist/uPlot.min.css" "$target/"
cp "$work/uplot/LICENSE" "$target/uPlot.LICENSE"
echo "vendored into $target"
