"""Who a call is for: principals, and the operator-issued keys that name them.

`principals` describes the caller that owns tasks (its APIMP key, limits, upload folders);
`keys` is the keys file of `APIMP_AUTH=keys` (hashes only, re-read when it changes); `limits`
refuses a submit that would break a principal's limits, before anything is sent.
"""
