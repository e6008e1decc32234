"""iproute2's languages: the batch reader, the printers (ip rule/route show, ip route
get text and JSON) and the name databases (rt_tables and friends)."""
