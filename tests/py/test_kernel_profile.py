"""Kernel profiles: each modelled build gives its own answers; auto follows the running kernel."""

import gzip
import json

import pytest

from polroute import Policy
from polroute.cli.app import main
from polroute.iproute2.batch import apply_batch
from polroute.iproute2.route_get import get_json
from polroute.model import kernel_profile as kp

HOST = """\
link set lo up
link add v0 type veth peer name v0p
link set v0 addrgenmode none
link set v0p addrgenmode none
addr add 2001:db8:1::1/64 dev v0 nodad
link set v0 up
link set v0p up
"""

# what each build answered in a namespace (docs/kernel-notes.md, "IPv6 multicast with iif")
MROUTE_ANSWER = {"error": "Message too long", "errno": "EMSGSIZE"}  # ip adds "RTNETLINK answers: "
NO_MROUTE_ANSWER = {
    "type": "multicast",
    "dst": "ff02::1",
    "from": "::",
    "dev": "v0p",
    "table": "local",
    "protocol": "kernel",
    "metric": 256,
    "flags": [],
    "iif": "v0p",
    "pref": "medium",
}


def host(kernel):
    p = Policy(kernel=kernel)
    apply_batch(p, HOST, "host.ip")
    return p


@pytest.mark.parametrize("name, answer", [("ipv6-mroute", MROUTE_ANSWER), ("no-ipv6-mroute", NO_MROUTE_ANSWER)])
def test_ipv6_multicast_input_answer_follows_the_build(name, answer):
    p = host(name)
    assert p.kernel.name == name
    assert get_json(p, ["ff02::1", "iif", "v0p"]) == answer
    # the output path and unicast input answers do not depend on the build
    assert get_json(p, ["ff02::1"])["dev"] in ("v0", "v0p")
    assert get_json(p, ["2001:db8:1::5", "from", "2001:db8:1::7", "iif", "v0p"])["dev"] == "v0"


def test_clone_and_set_kernel_keep_the_build():
    p = host("no-ipv6-mroute")
    assert p.clone().kernel.name == "no-ipv6-mroute"
    assert get_json(p.clone(), ["ff02::1", "iif", "v0p"]) == NO_MROUTE_ANSWER
    assert p.set_kernel("ipv6-mroute").name == "ipv6-mroute"
    assert get_json(p, ["ff02::1", "iif", "v0p"]) == MROUTE_ANSWER


def test_auto_is_the_running_kernel_or_the_default():
    want = kp.detect() or kp.DEFAULT
    assert kp.resolve("auto").features == want.features
    assert Policy().kernel.features == want.features
    assert kp.resolve(None) == kp.resolve("auto")
    assert kp.resolve(kp.PROFILES["ipv6-mroute"]) is kp.PROFILES["ipv6-mroute"]


def test_unknown_profile_is_refused():
    with pytest.raises(kp.ProfileError, match="unknown kernel profile 'bogus'"):
        Policy(kernel="bogus")


def test_config_option_reader(tmp_path):
    cfg = tmp_path / "config.gz"
    with gzip.open(cfg, "wt") as f:
        f.write("CONFIG_IPV6=y\n# CONFIG_IPV6_MROUTE is not set\nCONFIG_IP_MROUTE=y\n")
    assert kp._config_option("CONFIG_IPV6_MROUTE", str(cfg)) is False
    assert kp._config_option("CONFIG_IP_MROUTE", str(cfg)) is True
    assert kp._config_option("CONFIG_NOT_THERE", str(cfg)) is False
    assert kp._config_option("CONFIG_IPV6", str(tmp_path / "missing.gz")) is None
    (tmp_path / "bad.gz").write_bytes(b"not gzip")
    assert kp._config_option("CONFIG_IPV6", str(tmp_path / "bad.gz")) is None


def test_cli_lists_profiles_and_takes_kernel_option(tmp_path, capsys):
    assert main(["kernel", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in out["profiles"]] == ["ipv6-mroute", "no-ipv6-mroute"]
    assert out["detected"] == (kp.detect().name if kp.detect() else None)
    batch = tmp_path / "host.ip"
    batch.write_text(HOST)
    assert main(["get", "--batch", str(batch), "--kernel", "no-ipv6-mroute", "--json", "ff02::1", "iif", "v0p"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["type"] == "multicast"
    assert main(["get", "--batch", str(batch), "--kernel", "ipv6-mroute", "ff02::1", "iif", "v0p"]) == 2
    assert "Message too long" in capsys.readouterr().err
    assert main(["get", "--kernel", "bogus", "8.8.8.8"]) == 1
    assert "unknown kernel profile 'bogus'" in capsys.readouterr().err
