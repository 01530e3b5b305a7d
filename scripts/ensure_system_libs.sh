#!/usr/bin/env bash
# Invoice PDFs are rendered by WeasyPrint, which loads Pango (and HarfBuzz, fontconfig) at run time. Installs
# Debian's packages with apt when they are missing; elsewhere stops with one sentence saying what to install.
set -uo pipefail

missing=()
have_lib() { ldconfig -p 2>/dev/null | grep -q "$1"; }
have_lib 'libpango-1.0.so.0' || missing+=(libpango-1.0-0)
have_lib 'libpangoft2-1.0.so.0' || missing+=(libpangoft2-1.0-0)
have_lib 'libharfbuzz.so.0' || missing+=(libharfbuzz0b)
have_lib 'libfontconfig.so.1' || missing+=(libfontconfig1)
# A font with the rupee sign and accented Latin letters for the invoices.
fc-list 2>/dev/null | grep -qi dejavu || missing+=(fonts-dejavu-core)

if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
if command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
  echo "Installing ${missing[*]} with apt (WeasyPrint renders invoice PDFs with them)…"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null && exit 0
fi
echo "Invoice PDFs need Pango and a font (${missing[*]} on Debian): install them, then run again." >&2
exit 1
