# Sourced by the scripts here: run one command as root, whether or not sudo is installed.
# As root (a container, a server without sudo) the command runs as it is; otherwise through
# sudo; without either, it fails with what to do instead of "sudo: command not found".
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -- "$@"
  else
    echo "$(basename "$0"): this step needs root and sudo is not installed: run it as root: $*" >&2
    return 1
  fi
}
