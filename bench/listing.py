"""`python -m bench.listing`: the listing alone, as a bare aiohttp loop.

The baseline of the rerun case: the same pages the archiver asks for, one after another, each
decoded as JSON, and nothing else. It prints how many pages and records it saw.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import aiohttp


async def list_all(api_url: str, token: str, page_size: int) -> tuple[int, int]:
    """Fetch every page of the task history; returns (pages, records)."""
    pages = records = 0
    url = api_url.rstrip("/") + "/videoTaskHistory"
    async with aiohttp.ClientSession() as session:
        while True:
            body = {"page": pages + 1, "pageSize": page_size}
            async with session.post(url, json=body, headers={"Authorization": token}) as answer:
                document = json.loads(await answer.read())
            pages += 1
            rows = document.get("data") or []
            records += len(rows)
            if len(rows) < page_size:
                return pages, records


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.listing")
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--page-size", type=int, default=50)
    args = parser.parse_args()
    pages, records = asyncio.run(list_all(args.api_url, args.token, args.page_size))
    print(f"{pages} pages, {records} records")


if __name__ == "__main__":
    main()
