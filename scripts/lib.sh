# Shared set-up steps for scripts/dev and scripts/test. Each step checks
# first and does nothing when it is already done. Sourced, not run.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PATH"
# Read by Leptos at compile time (option_env!): the bundle's file name. Set
# for every build, so that the tests, the server and `cargo leptos` share
# one build of the tree instead of rebuilding Leptos and all above it.
export LEPTOS_OUTPUT_NAME=agency-sso

# Each step's line carries the minutes and seconds since the script began.
say() { printf '\033[1m==> [%02d:%02d] %s\033[0m\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=""
# ensure_apt PKG...: install the Debian packages that are missing.
ensure_apt() {
  local missing=()
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  if [ -z "$APT_UPDATED" ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# The WebAssembly half: ensure_wasm_toolchain [release]. Where rustup can
# add the wasm32 target, its prebuilt std is used (building std for wasm
# costs minutes on a first run). Debian 12's binaryen 108 mis-optimises
# wasm that uses reference types, which that std does: a release bundle
# with such a wasm-opt, or a machine where rustup cannot add the target,
# rebuilds std for wasm with Debian's rustc-web and those features off (see
# shared/TOOLCHAIN.md).
ensure_wasm_toolchain() {
  CARGO=cargo
  WASM_BUILD_ARGS=()
  WASM_CPU_FLAGS=()
  ensure_apt binaryen
  local opt_version prebuilt=""
  opt_version=$(wasm-opt --version 2>/dev/null | grep -o 'version [0-9]*' | awk '{print $2}')
  if rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown \
    || timeout 300 rustup target add wasm32-unknown-unknown >/dev/null 2>&1; then
    prebuilt=1
  fi
  # rustup's prebuilt std for wasm where rustup has it, except for a release
  # bundle with a wasm-opt older than 116 (it mis-optimises the reference
  # types that std is built with). Debug bundles never meet wasm-opt.
  if [ -z "$prebuilt" ] || { [ "${1:-}" = release ] && [ "${opt_version:-0}" -lt 116 ]; }; then
    ensure_apt rustc-web cargo-web rust-web-src lld
    CARGO=/usr/bin/cargo
    export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
    export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld
    WASM_CPU_FLAGS=(-Ctarget-cpu=mvp)
    WASM_BUILD_ARGS=(-Zbuild-std=std,panic_abort)
  fi
  build_flags debug
}

# build_flags debug|release: the compiler flags of every build of that kind.
# Debug builds erase the types of Leptos' views (`--cfg erase_components`,
# as cargo-leptos does in debug builds): the pages compile in a fraction of
# the time and the binaries are a fraction of the size. Release builds keep
# the full types, which make the smaller and faster bundle. Set once for
# all builds of a kind, so that the tests and the dashboard share one build.
build_flags() {
  local erase=()
  [ "$1" = debug ] && erase=(--cfg erase_components)
  export CARGO_BUILD_RUSTFLAGS="${erase[*]}"
  export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${WASM_CPU_FLAGS[*]} ${erase[*]}"
}

# wasm-bindgen-cli, exactly the version in Cargo.lock. Its install (about
# 3.5 minutes of compiling alone) runs beside the dashboard's build, which
# needs it only at the end (wasm_build_finish waits for it). On two cores
# this saved no measurable time (BENCHMARKS.md, session 14): both are busy.
ensure_wasm_bindgen() {
  local want
  WASM_BINDGEN_PID=""
  want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock")
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" = "$want" ]; then return 0; fi
  say "installing wasm-bindgen-cli $want (the version in Cargo.lock), beside the build"
  mkdir -p "$ROOT/target"
  $BEHIND "$CARGO" install wasm-bindgen-cli --version "$want" --force >"$ROOT/target/wasm-bindgen-install.log" 2>&1 &
  WASM_BINDGEN_PID=$!
}

ensure_node_packages() {
  command -v node >/dev/null 2>&1 || ensure_apt nodejs npm
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 20 ]; then
    echo "Node.js $(node --version) is too old: oidc-provider and Playwright need Node 20 or later" >&2
    return 1
  fi
  local stamp="$ROOT/end2end/node_modules/.installed-lock"
  if [ -f "$stamp" ] && cmp -s "$stamp" "$ROOT/end2end/package-lock.json"; then return 0; fi
  say "installing the end-to-end packages (npm ci)"
  (cd "$ROOT/end2end" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$ROOT/end2end/package-lock.json" "$stamp"
}

# Token verifiers nobody here wrote, for the key tests: PyJWT (into
# target/pyverifiers, off the system's site-packages) and jose (npm, with
# the end-to-end packages).
ensure_python_verifiers() {
  local dir="$ROOT/target/pyverifiers" req="$ROOT/tests/verifiers/requirements.txt"
  if [ -f "$dir/.installed" ] && cmp -s "$dir/.installed" "$req"; then return 0; fi
  command -v python3 >/dev/null 2>&1 || ensure_apt python3
  python3 -m pip --version >/dev/null 2>&1 || ensure_apt python3-pip
  say "installing PyJWT (token verification) and openapi-spec-validator (the API document) for the tests"
  python3 -m pip install --quiet --disable-pip-version-check --target "$dir" -r "$req"
  cp "$req" "$dir/.installed"
}

# The suite's PostgreSQL: TEST_PG_URL, else the server on 127.0.0.1:5432
# (this machine kind runs one with trust auth). Where none is installed,
# install Debian's and give the postgres role a password for loopback use.
ensure_postgres() {
  ensure_apt postgresql-client
  if [ -n "${TEST_PG_URL:-}" ]; then return 0; fi
  if pg_isready -q -h 127.0.0.1 -p 5432; then return 0; fi
  local installed_here=""
  if [ ! -d /etc/postgresql ]; then
    ensure_apt postgresql
    installed_here=1
  fi
  say "starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  if [ -n "$installed_here" ]; then
    as_root su postgres -c "psql -qc \"ALTER ROLE postgres PASSWORD 'postgres'\"" >/dev/null
    export TEST_PG_URL="postgres://postgres:postgres@127.0.0.1:5432/postgres"
  fi
  for _ in $(seq 1 5); do pg_isready -q -h 127.0.0.1 -p 5432 && return 0; sleep 1; done
  echo "PostgreSQL is not running on 127.0.0.1:5432; the test suite needs it (set TEST_PG_URL for another server)" >&2
  return 1
}

# ensure_tools [release]: `release` where the bundle will be a release one.
ensure_tools() {
  # lld links the server and the tests (scripts/link-gcc); binaryen's wasm-opt
  # shrinks the release bundle.
  ensure_apt build-essential pkg-config curl lld binaryen python3
  ensure_wasm_toolchain "${1:-}"
  ensure_wasm_bindgen
  ensure_node_packages
}

# Whether MariaDB lets root in on 127.0.0.1:3306 without a password.
mariadb_answers() {
  php -r 'exit(@new mysqli("127.0.0.1", "root", "", "", 3306) ? 0 : 1);' 2>/dev/null
}

# A real WordPress for the connector plugin (the tests and scripts/dev's
# demo): Debian's WordPress (6.1), PHP with MySQL, and MariaDB on
# 127.0.0.1:3306 (this machine kind runs one; where none is installed,
# Debian's is installed and started, as for PostgreSQL).
ensure_wordpress() {
  ensure_apt wordpress php-cli php-mysql
  if mariadb_answers; then return 0; fi
  ensure_apt mariadb-server
  say "starting MariaDB"
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql
  for _ in $(seq 1 30); do
    mariadb_answers && return 0
    # Debian's root signs in through the socket only: let root in on loopback, as this machine kind does.
    as_root mariadb -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY ''; \
      GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION" 2>/dev/null || true
    sleep 1
  done
  echo "MariaDB does not answer on 127.0.0.1:3306 as root without a password; the WordPress tests need it" >&2
  return 1
}

# What the test suite needs beyond the tools.
ensure_test_tools() {
  ensure_apt chromium python3 openssl php-cli rsyslog rsyslog-gnutls
  ensure_python_verifiers
  ensure_postgres
  ensure_wordpress
  ensure_apt phpunit
}

# Build the server binary and the hydrate bundle into target/ (the layout
# cargo-leptos makes: target/site/pkg/agency-sso.{js,wasm,css}, public/ in
# target/site). The same steps as `cargo leptos build`, without having to
# compile cargo-leptos (about half of a fresh machine's first hour).
# `leptos_build --release` builds both optimised and also writes brotli and
# gzip copies of the bundle, which the server sends to browsers that accept
# them; other builds remove stale copies so that they are never sent for
# newer files.
leptos_build() {
  wasm_build_start "$@"
  say "building the server"
  local rc=0
  "$CARGO" build --features ssr --bin agency-sso ${1:+"$1"} || rc=$?
  wasm_build_finish || rc=$?
  return "$rc"
}

# The WebAssembly library builds in the background, in its own target
# directory (target/front, as with cargo-leptos), so that the server or the
# tests build beside it instead of waiting for its lock: one build alone
# leaves a core idle for much of its time. wasm_build_finish waits for it.
wasm_build_start() {
  WASM_RELEASE=""
  if [ "${1:-}" = --release ]; then
    WASM_RELEASE=1
    build_flags release
  fi
  local args=(--lib --target wasm32-unknown-unknown --no-default-features --features hydrate
    --target-dir "$ROOT/target/front")
  [ -n "$WASM_RELEASE" ] && args+=(--profile wasm-release)
  say "building the WebAssembly bundle (in the background)"
  $BEHIND "$CARGO" build "${args[@]}" "${WASM_BUILD_ARGS[@]}" &
  WASM_BUILD_PID=$!
}

# What runs behind the server's build: nothing by default; scripts/dev sets
# `nice -n 19`, so that on a fresh machine the server (which answers without
# the bundle) gets the cores first and the bundle and wasm-bindgen-cli take
# what is left.
BEHIND="${BEHIND:-}"

# The site's files that need no WebAssembly: the stylesheet, public/, the
# connector's zip.
site_static_files() {
  local site="$ROOT/target/site" pkg="$ROOT/target/site/pkg"
  mkdir -p "$pkg"
  # Dated as their sources (a release binary embeds them: unchanged files
  # leave it unbuilt).
  cp -fp "$ROOT/style/main.css" "$pkg/$LEPTOS_OUTPUT_NAME.css"
  cp -rfp "$ROOT/public/." "$site/"
  # The WordPress plugin, as admins download it from a connector site's page.
  "$ROOT/scripts/connector-zip" "$site/agency-sso-connector.zip"
}

wasm_build_finish() {
  if ! wait "$WASM_BUILD_PID"; then
    echo "the WebAssembly build failed" >&2
    return 1
  fi
  if [ -n "${WASM_BINDGEN_PID:-}" ]; then
    say "waiting for wasm-bindgen-cli's install"
    if ! wait "$WASM_BINDGEN_PID"; then
      cat "$ROOT/target/wasm-bindgen-install.log" >&2
      echo "installing wasm-bindgen-cli failed" >&2
      return 1
    fi
    WASM_BINDGEN_PID=""
  fi
  local pkg="$ROOT/target/site/pkg" name="$LEPTOS_OUTPUT_NAME" wasm f
  wasm="$ROOT/target/front/wasm32-unknown-unknown/$([ -n "$WASM_RELEASE" ] && echo wasm-release || echo debug)/agency_sso.wasm"
  mkdir -p "$pkg"
  # wasm-bindgen and wasm-opt take seconds: only for a library that changed.
  if [ "$wasm" -nt "$pkg/$name.wasm" ] || [ "$(cat "$pkg/.built-from" 2>/dev/null)" != "$wasm" ]; then
    say "generating the bundle's JavaScript (wasm-bindgen)"
    wasm-bindgen --target web --no-typescript --out-dir "$pkg" --out-name "$name" "$wasm"
    mv -f "$pkg/${name}_bg.wasm" "$pkg/$name.wasm"
    if [ -n "$WASM_RELEASE" ]; then
      say "optimising the bundle (wasm-opt)"
      wasm-opt -Oz "$pkg/$name.wasm" -o "$pkg/$name.wasm"
    fi
    echo "$wasm" > "$pkg/.built-from"
  fi
  site_static_files
  rm -f "$pkg"/*.br "$pkg"/*.gz
  if [ -n "$WASM_RELEASE" ]; then
    ensure_apt brotli
    say "precompressing the bundle (brotli, gzip)"
    for f in "$pkg"/*.wasm "$pkg"/*.js "$pkg"/*.css; do
      [ -f "$f" ] || continue
      brotli -f -k -q 11 "$f"
      gzip -n -f -k -9 "$f"  # -n: no name or time in the header (same bytes from the same file)
      touch -r "$f" "$f.br" "$f.gz"
    done
  fi
}
