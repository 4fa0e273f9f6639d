"""Where the CLI keeps and finds API tokens, so it works from any folder.

`vidmorph serve` writes the default user's token into its data directory (`api-token`) and
into the user's credentials file, keyed by the server's URL:
`$VIDMORPH_CONFIG_DIR/credentials.json`, else `$XDG_CONFIG_HOME/vidmorph/...`, else
`~/.config/vidmorph/...`. A client command takes, in order: `--token`, `VIDMORPH_API_TOKEN`,
the credentials file's entry for its `--url`, and `./vidmorph-data/api-token`. Every file is
written whole or not at all (a temp file renamed over it) and readable only by its owner from
its first byte.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from vidmorph.config import Settings

TOKEN_FILE = "api-token"


def config_dir() -> Path:
    chosen = os.environ.get("VIDMORPH_CONFIG_DIR")
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "vidmorph"


def credentials_file() -> Path:
    return config_dir() / "credentials.json"


def write_private(path: Path, text: str) -> None:
    """`text` into `path`, atomically, mode 0600 from the first byte."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # a new file of a random name (mkstemp: O_EXCL, 0600), never one someone placed there
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _known() -> dict[str, str]:
    try:
        found = json.loads(credentials_file().read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def remember(settings: Settings, token: str) -> list[Path]:
    """Keep the default user's token for `settings.public_url`; the files written. A home
    that cannot be written (a read-only container) is skipped: the data directory's copy
    still serves."""
    saved = settings.data_dir / TOKEN_FILE
    write_private(saved, token + "\n")
    written = [saved]
    known = _known()
    known[settings.public_url] = token
    try:
        write_private(credentials_file(), json.dumps(known, indent=1) + "\n")
        written.append(credentials_file())
    except OSError:
        pass
    return written


def saved_token(settings: Settings) -> str | None:
    """The token the server wrote into its data directory, if this is run beside it."""
    path = settings.data_dir / TOKEN_FILE
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def find_token(url: str, settings: Settings) -> str | None:
    """A token for the server at `url`: the environment's, the credentials file's, the
    data directory's (see the module's docstring for the order)."""
    return settings.api_token or _known().get(url.rstrip("/")) or saved_token(settings)
