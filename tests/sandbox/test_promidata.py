"""The Promidata feed simulator: index and file format, hashes, change detection, faults, counters."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import httpx
import pytest

from conveyor.sandbox import FaultConfig, FaultKind, RunningSandbox, Sandbox
from conveyor.sandbox.promidata import FILE_ENDPOINT, INDEX_ENDPOINT, PromidataConfig, PromidataSandbox

Serve = Callable[[Sandbox], RunningSandbox]


def index(server: RunningSandbox) -> list[tuple[str, str]]:
    text = httpx.get(f"{server.api_url}/Import/Import.txt").text
    return [tuple(line.split("|")) for line in text.splitlines() if line]  # type: ignore[misc]


def test_index_lists_one_file_per_family_with_the_hash_of_its_bytes_and_the_category_file(
    serve: Serve,
) -> None:
    sandbox = PromidataSandbox(PromidataConfig(suppliers=("A23", "B7"), families=3))
    server = serve(sandbox)
    entries = index(server)
    assert len(entries) == 2 * 3 + 1
    assert entries[-1][0] == f"{server.api_url}/CAT.csv"
    for url, digest in entries[:-1]:
        assert url.startswith(server.api_url + "/")
        body = httpx.get(url).content
        assert hashlib.md5(body).hexdigest() == digest
    folders = sorted({url.rsplit("/", 2)[1] for url, _ in entries[:-1]})
    assert folders == ["A23", "B7"]
    categories = httpx.get(f"{server.api_url}/CAT.csv").text.splitlines()
    assert categories[0] == "code;name;parent_code"
    assert "BAGS/SHOPPING_BAGS;Shopping bags;BAGS" in categories


def test_product_file_has_parent_children_languages_prices_and_servable_images(serve: Serve) -> None:
    config = PromidataConfig(families=2, variants_per_family=4, images_per_variant=3, languages=("de", "en"))
    server = serve(PromidataSandbox(config))
    url = index(server)[0][0]
    product = httpx.get(url).json()
    assert product["Sku"] == url.rsplit("/", 1)[1].removesuffix(".json")
    assert product["ANumber"] == "A23"  # the supplier code, as in the observed sample
    children = product["ChildProducts"]
    assert [c["Sku"] for c in children] == [f"{product['Sku']}-{n:03d}" for n in (1, 2, 3, 4)]
    first = children[0]
    assert set(first["ProductDetails"]) == {"de", "en"}
    fields = {
        f["ConfigurationName"]: f["ConfigurationValue"]
        for f in first["ProductDetails"]["en"]["ConfigurationFields"]
    }
    assert set(fields) == {"Color", "Size"}
    tiers = first["ProductPriceCountryBased"]["GERMANY"]["RecommendedSellingPrice"]
    assert [t["Quantity"] for t in tiers] == [1, 100, 500]
    assert tiers[0]["Price"] > tiers[1]["Price"] > tiers[2]["Price"]
    details = first["ProductDetails"]["en"]
    pictures = [details["Image"]["Url"]] + [g["Url"] for g in details["MediaGalleryImages"]]
    assert len(pictures) == 3
    for picture in pictures:
        response = httpx.get(picture)
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/jpeg"
        assert response.content[:2] == b"\xff\xd8"


def test_single_variant_families_ship_one_self_child_without_options(serve: Serve) -> None:
    server = serve(PromidataSandbox(PromidataConfig(families=1, variants_per_family=1)))
    product = httpx.get(index(server)[0][0]).json()
    (child,) = product["ChildProducts"]
    assert child["Sku"] == product["Sku"]
    assert child["ProductDetails"]["en"]["ConfigurationFields"] == []


def test_same_seed_same_bytes_and_a_change_moves_only_the_changed_hashes(serve: Serve) -> None:
    sandbox = PromidataSandbox(PromidataConfig(seed=5, families=6))
    b = serve(sandbox)
    twin = serve(PromidataSandbox(PromidataConfig(seed=5, families=6)))
    other = serve(PromidataSandbox(PromidataConfig(seed=6, families=6)))

    def files(server: RunningSandbox) -> list[str]:  # URLs inside differ by port only
        return [httpx.get(url).text.replace(server.base_url, "") for url, _ in index(server)]

    assert files(b) == files(twin)
    assert files(b) != files(other)
    before = [digest for _, digest in index(b)]
    changed = sandbox.change_families(2, start=1)
    assert changed == ["A23-100001", "A23-100002"]
    after = [digest for _, digest in index(b)]
    moved = [n for n, (old, new) in enumerate(zip(before, after, strict=True)) if old != new]
    assert moved == [1, 2]
    product = httpx.get(index(b)[1][0]).json()
    assert product["ProductDetails"]["en"]["Name"].endswith("(rev 1) [en]")
    first_picture = product["ChildProducts"][0]["ProductDetails"]["en"]["Image"]["Url"]
    assert first_picture.endswith("-001-1-r1.jpg")
    assert httpx.get(first_picture).status_code == 200
    old_picture = first_picture.replace("-r1.jpg", ".jpg")
    assert httpx.get(old_picture).status_code == 404  # a replaced picture is gone from the host
    with pytest.raises(ValueError, match="only 6 families"):
        sandbox.change_families(7)


def test_listed_files_can_be_missing_or_truncated_and_errors_are_s3_shaped(serve: Serve) -> None:
    sandbox = PromidataSandbox(PromidataConfig(families=3))
    server = serve(sandbox)
    sandbox.break_file("A23-100000", "missing")
    sandbox.break_file("A23-100001", "truncated")
    urls = [url for url, _ in index(server)]
    assert len(urls) == 4  # both stay listed
    missing = httpx.get(urls[0])
    assert missing.status_code == 404
    assert "<Code>NoSuchKey</Code>" in missing.text
    truncated = httpx.get(urls[1])
    assert truncated.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated.content)
    assert httpx.get(urls[2]).status_code == 200
    assert httpx.get(f"{server.api_url}/A23/A23-999999.json").status_code == 404
    assert httpx.get(f"{server.base_url}/Images/A23/A23-100000-009-1.jpg").status_code == 404
    picture = f"{server.base_url}/Images/A23/A23-100002-001-2.jpg"
    sandbox.break_image("A23-100002-001-2.jpg")
    assert httpx.get(picture).status_code == 404
    sandbox.break_image("A23-100002-001-2.jpg", broken=False)
    assert httpx.get(picture).status_code == 200


def test_faults_and_counters(serve: Serve) -> None:
    sandbox = PromidataSandbox(PromidataConfig(families=2, faults=FaultConfig(error_statuses=(503,))))
    server = serve(sandbox)
    sandbox.faults.force(FaultKind.ERROR, FaultKind.THROTTLE)
    failed = httpx.get(f"{server.api_url}/Import/Import.txt")
    throttled = httpx.get(f"{server.api_url}/Import/Import.txt")
    assert failed.status_code == throttled.status_code == 503
    assert "<Code>SlowDown</Code>" in throttled.text
    urls = [url for url, _ in index(server)]
    httpx.get(urls[0])
    picture = httpx.get(urls[0]).json()["ChildProducts"][0]["ProductDetails"]["en"]["Image"]["Url"]
    httpx.get(picture)
    assert sandbox.counters.by_endpoint[INDEX_ENDPOINT] == 3
    assert sandbox.counters.by_endpoint[FILE_ENDPOINT] == sandbox.file_requests == 2
    assert sandbox.image_requests == 1
    assert sandbox.counters.faults == {"error": 1, "throttle": 1}
    assert sandbox.counters.rate_limited == 1
    assert sandbox.counters.by_status[503] == 2


def test_latency_and_timeouts_reach_the_client(serve: Serve) -> None:
    slow = serve(PromidataSandbox(PromidataConfig(families=1, faults=FaultConfig(latency=(0.1, 0.1)))))
    response = httpx.get(f"{slow.api_url}/Import/Import.txt")
    assert response.elapsed.total_seconds() >= 0.1
    faults = FaultConfig(timeout_rate=1.0, timeout_delay=0.5)
    hanging = serve(PromidataSandbox(PromidataConfig(families=1, faults=faults)))
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{hanging.api_url}/Import/Import.txt", timeout=0.2)


def test_configuration_is_validated() -> None:
    with pytest.raises(ValueError, match="supplier code"):
        PromidataConfig(suppliers=("a23",))
    with pytest.raises(ValueError, match="variants_per_family"):
        PromidataConfig(variants_per_family=0)
    with pytest.raises(ValueError, match="unsupported hash type"):
        PromidataConfig(hash_algorithm="nope")
