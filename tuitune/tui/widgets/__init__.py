"""Reusable widgets. Widgets may call `tuitune.core` (through workers when slow); core never calls them."""
