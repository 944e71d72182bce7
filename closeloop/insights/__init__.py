"""Analytics over answers and cases: filters, trends, segments, program metrics, risk, reports."""
