"""Commerce catalog work built on Conveyor's public API: marketplace connectors and pipelines."""
