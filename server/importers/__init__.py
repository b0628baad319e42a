"""Importers: grid trees and incidents from files, each in one transaction (docs/importing.md)."""
