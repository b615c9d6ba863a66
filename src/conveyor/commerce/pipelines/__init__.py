"""Publishing pipelines built on the engine's public API; see `campaign_publish`."""

from .campaign_publish import JOB_KIND, CampaignJobs, register

__all__ = ["JOB_KIND", "CampaignJobs", "register"]
