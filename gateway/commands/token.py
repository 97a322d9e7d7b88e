"""``gateway token create``: API tokens for the HTTP API (see :mod:`gateway.web.tokens`)."""

from __future__ import annotations

import sys

from gateway.commands.common import add_store_options, load_config


def add_parser(sub) -> None:
    p = sub.add_parser("token", help="manage HTTP API tokens",
                       description="Manage the tokens of the HTTP API (stored hashed in the data "
                                   "directory; a running gateway picks up changes at once).")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser(
        "create", help="create a token and print it once",
        description="Create a token with the given scope and print it alone on standard "
                    "output; only its hash is kept. admin includes write and query.")
    add_store_options(create)
    create.add_argument("--scope", required=True, choices=("write", "query", "admin"))
    create.add_argument("--token-file", metavar="FILE",
                        help="use the token in FILE (first line; - for standard input) instead "
                             "of a new random one, e.g. one provisioned by cloud-init")
    create.set_defaults(func=create_token)


def create_token(args) -> int:
    from gateway.web.tokens import TokenError, TokenStore

    config = load_config(args)
    chosen = None
    if args.token_file:
        f = sys.stdin if args.token_file == "-" else open(args.token_file, encoding="utf-8")
        try:
            chosen = f.readline().strip()
        finally:
            if f is not sys.stdin:
                f.close()
    try:
        token, record = TokenStore(config.gateway.data_dir).create(args.scope, chosen)
    except TokenError as e:
        print(f"gateway: error: {e}", file=sys.stderr)
        return 1
    print(f"created {record.scope} token {record.id}", file=sys.stderr)
    if chosen is None:
        print(token)
    return 0
