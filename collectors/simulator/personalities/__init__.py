"""Firmware personalities: each turns a SimDevice into the bytes one real firmware sends."""
