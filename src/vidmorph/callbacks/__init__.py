"""Webhook callbacks: replyUrl guarding, Standard Webhooks signing and one-shot delivery.

The durable retry loop (rows, backoff, expiry) lives above this package and calls `CallbackSender`.
"""

from __future__ import annotations
