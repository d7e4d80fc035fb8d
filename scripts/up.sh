#!/usr/bin/env bash
# `make up`: prepare and run the local gateway.
#
# Today this builds the binary (done by make), checks the pinned Envoy, and creates or renews the
# local PKI for xDS mTLS in STATE_DIR. Running the controller and the sandboxed Envoy on
# examples/quickstart (`gatehouse up`) arrives with the translation issue; until then this script
# says so and stops after the PKI step.
set -euo pipefail
state="${1:?usage: up.sh STATE_DIR}"
bin="${CARGO_TARGET_DIR:-target}/debug/gatehouse"
envoy="${GATEHOUSE_ENVOY:-.venv/bin/envoy}"

"$envoy" --version | sed 's/^/envoy: /'
mkdir -p "$state"
pki="$state/pki"
if [ ! -e "$pki/ca/ca.json" ]; then
  "$bin" certs init --dir "$pki"
  "$bin" certs issue --dir "$pki" --controller --dns localhost --ip 127.0.0.1
  "$bin" certs issue --dir "$pki" --gateway gatehouse-system/quickstart
else
  "$bin" certs rotate --dir "$pki"
fi
echo
echo "PKI ready in $pki (inspect with: $bin certs inspect $pki/controller/cert.pem)"
echo "Not yet available: the local gateway itself (\`gatehouse up examples/quickstart\`)."
echo "It is delivered by the translation issue; this target will then start it and print its address."
