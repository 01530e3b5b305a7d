#!/usr/bin/env bash
# Invoice PDFs are rendered by WeasyPrint, which loads Pango (with HarfBuzz and fontconfig) at run time and needs a
# font with the rupee sign. Installs Debian's packages with apt when they are missing; elsewhere stops with one
# sentence saying what to install.
set -uo pipefail
cd "$(dirname "$0")/.."

python=".venv/bin/python"
weasyprint_loads() { [[ -x "$python" ]] && "$python" -c "import weasyprint" >/dev/null 2>&1; }
font_present() { [[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] || fc-list 2>/dev/null | grep -qi dejavu; }

if weasyprint_loads && font_present; then
  exit 0
fi
packages=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 libfontconfig1 fonts-dejavu-core)
if command -v apt-get >/dev/null && [[ "$(id -u)" == 0 ]]; then
  echo "Installing ${packages[*]} with apt (WeasyPrint renders invoice PDFs with them)…"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
  if weasyprint_loads && font_present; then
    exit 0
  fi
fi
echo "Invoice PDFs need Pango and a font (on Debian: ${packages[*]}): install them, then run again." >&2
exit 1
