"""Spreadsheets that leave the system (blank forms, county lists) and the ones read back in."""
