"""Seller-data fetching (seed 004): hourly, per user, over each Amazon seller account and region."""

from .analysis import analyse
from .jobs import DEDUP_PREFIX, QUEUE, SCHEDULE, TICK_QUEUE, SellerDataJobs, register
from .models import Region, RunStatus, SellerAccount, SellerDataCache, SellerDataRun, SellerUser

__all__ = [
    "DEDUP_PREFIX",
    "QUEUE",
    "SCHEDULE",
    "TICK_QUEUE",
    "Region",
    "RunStatus",
    "SellerAccount",
    "SellerDataCache",
    "SellerDataJobs",
    "SellerDataRun",
    "SellerUser",
    "analyse",
    "register",
]
