"""A local HTTP stub of the Azure Retail Prices API serving recorded pages.

`GET /api/retail/prices?api-version=...&$filter=...[&$skip=N]`: the first page without
`$skip`, then the page whose predecessor's NextPageLink carries that `$skip`. The recorded
NextPageLinks point at the public host (as the real API's do): the client must follow them on
its configured endpoint. Faults and request records as in billing_stub.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from stubs.billing_stub import FIXTURES, PagedJSONStub, load_pages


class RetailStub(PagedJSONStub):
    def page(self, pages: list[dict], query: dict[str, list[str]]) -> dict:
        skip = (query.get("$skip") or [""])[0]
        if not skip:
            return pages[0]
        for i, p in enumerate(pages[:-1]):
            link = p.get("NextPageLink") or ""
            if parse_qs(urlsplit(link).query).get("$skip", [""])[0] == skip:
                return pages[i + 1]
        return {"error": {"code": "BadRequest", "message": f"bad $skip {skip!r}"}}

    def filters(self) -> list[str]:
        """The $filter of every request served so far."""
        return [(q.get("$filter") or [""])[0] for _, q in self.requests]


def retail_stub() -> RetailStub:
    return RetailStub({r"/api/retail/prices": load_pages(FIXTURES / "azure", "prices")})


class ArmSkuStub(PagedJSONStub):
    """ARM `GET /subscriptions/<id>/providers/Microsoft.Compute/skus`, `$skiptoken` paging.

    Recorded nextLinks name management.azure.com; they are served as this stub's URL. Start it
    with an SSL context: azure-mgmt refuses bearer tokens over plain http.
    """

    def page(self, pages: list[dict], query: dict[str, list[str]]) -> dict:
        token = (query.get("$skiptoken") or [""])[0]
        if not token:
            return pages[0]
        for i, p in enumerate(pages[:-1]):
            link = p.get("nextLink") or ""
            if parse_qs(urlsplit(link).query).get("$skiptoken", [""])[0] == token:
                return pages[i + 1]
        return {"error": {"code": "InvalidSkipToken", "message": f"bad $skiptoken {token!r}"}}


def arm_sku_stub() -> ArmSkuStub:
    return ArmSkuStub({r"/subscriptions/[^/]+/providers/Microsoft\.Compute/skus":
                       load_pages(FIXTURES / "azure", "resource_skus")},
                      public_host="https://management.azure.com")
