from dataclasses import dataclass

import pytest

from gateway.config import Loader, Secret, render, setting


@dataclass
class Upstream:
    url: str = setting("http://127.0.0.1:8086")
    token: Secret | None = setting(None)


def load(raw):
    loader = Loader()
    return loader.load(Upstream, raw), loader.problems


def test_secret_from_env_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("GW_TEST_TOKEN", "s3cr3t-env")
    up, errs = load({"token": {"env": "GW_TEST_TOKEN"}})
    assert not errs and up.token.reveal() == "s3cr3t-env"
    f = tmp_path / "token"
    f.write_text("s3cr3t-file\n")
    f.chmod(0o600)
    up, errs = load({"token": {"file": str(f)}})
    assert up.token.reveal() == "s3cr3t-file"


def test_secret_is_never_shown(monkeypatch):
    monkeypatch.setenv("GW_TEST_TOKEN", "s3cr3t-env")
    for raw in ({"token": "s3cr3t-literal"}, {"token": {"env": "GW_TEST_TOKEN"}}):
        up, _ = load(raw)
        shown = render(up) + repr(up) + str(up.token)
        assert "s3cr3t" not in shown


def test_missing_secret_source_names_the_source_not_a_value():
    up, _ = load({"token": {"env": "GW_TEST_UNSET_VARIABLE"}})
    with pytest.raises(ValueError, match="GW_TEST_UNSET_VARIABLE is not set"):
        up.token.reveal()


@pytest.mark.parametrize("raw", [{"path": "/x"}, {"file": 3}, {"file": "/a", "env": "B"}, 42])
def test_bad_secret_shapes(raw):
    _, errs = load({"token": raw})
    assert [e.path for e in errs] == ["token"]


def test_a_secret_file_must_exist_and_not_be_readable_by_all(tmp_path):
    f = tmp_path / "token"
    _, errs = load({"token": {"file": str(f)}})
    assert [(e.path, e.message) for e in errs] == [
        ("token", f"secret file {f}: No such file or directory")]
    f.write_text("s3cr3t\n")
    f.chmod(0o644)
    _, errs = load({"token": {"file": str(f)}})
    assert [(e.path, e.message) for e in errs] == [
        ("token", f"secret file {f} is readable by all users (mode 0644); chmod o-r {f}")]
    f.chmod(0o640)
    up, errs = load({"token": {"file": str(f)}})
    assert not errs and up.token.reveal() == "s3cr3t"
