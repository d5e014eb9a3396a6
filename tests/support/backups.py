"""Backups changed as an attacker or a hurried operator would change them, each of which a restore must refuse:
the suite's tests (tests/test_backup.py) and the drill's refused restores (measure/drill.py) use the same."""

import json
import shutil
from pathlib import Path


def tamper(folder: Path, target: str, donor: str, how: str) -> str:
    """Changes a backup holding target's and donor's copies as an attacker or a hurried operator did, so that
    restoring target from it must be refused; what the refusal says."""
    about_path = folder / f"{target}.json"
    about = json.loads(about_path.read_text())
    copy = folder / about["file"]  # the target's copy
    donor_copy = folder / json.loads((folder / f"{donor}.json").read_text())["file"]  # the donor's
    if how == "metadata names a file outside the backup":
        about["file"] = "../../../../tmp/elsewhere.sqlite3"
        about_path.write_text(json.dumps(about))
        return "another file"
    if how == "metadata names an absolute path":
        about["file"] = str(donor_copy.resolve())
        about_path.write_text(json.dumps(about))
        return "another file"
    if how == "another service's copy under its name":
        copy.unlink()
        shutil.copy(donor_copy, copy)
        return "SHA-256 differs"
    if how == "another service's copy under its name, its digest rewritten":
        copy.unlink()
        shutil.copy(donor_copy, copy)
        about["sha256"] = json.loads((folder / f"{donor}.json").read_text())["sha256"]
        about_path.write_text(json.dumps(about))
        return f"is not {target}'s database"
    if how == "a link in the copy's place":
        copy.unlink()
        copy.symlink_to(donor_copy)
        return "not a file of the backup's own folder"
    if how == "changed bytes":
        data = bytearray(copy.read_bytes())
        data[len(data) // 2] ^= 0xFF
        copy.write_bytes(bytes(data))
        return "SHA-256 differs"
    if how == "metadata names another service":
        about["service"] = donor
        about_path.write_text(json.dumps(about))
        return f"names {donor!r}"
    raise ValueError(how)


TAMPERINGS = [
    "metadata names a file outside the backup",
    "metadata names an absolute path",
    "another service's copy under its name",
    "another service's copy under its name, its digest rewritten",
    "a link in the copy's place",
    "changed bytes",
    "metadata names another service",
]
