"""A VOS3000-compatible Web API: POST /external/server/<Action>, JSON in and out, errors in retCode.

Carriers moving from VOS3000 keep the scripts they wrote against its Web API;
the actions map VOS's fields onto this switch's models (views.py lists them).
"""
