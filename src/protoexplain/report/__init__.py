"""Explanation figures and the static HTML report (``protoexplain report``)."""
