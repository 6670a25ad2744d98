"""The hostile-peer suite's parts: what each hostile peer answers (wire, postgres, mysql, tls, http, answers) and
how one row is run and measured against a live agent (rows, measure)."""
