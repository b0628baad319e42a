"""The demo county: Hongya County (洪雅县), Meishan, Sichuan. See docs/demo.md."""

from server.demo.loader import DemoSummary, load_demo

__all__ = ["DemoSummary", "load_demo"]
