"""What a task costs before it is paid for: the price table and the spending budgets.

`pricing` estimates a request from the price table (`APIMP_PRICES` or Google's list prices);
`budget` sums today's and this month's spend from the journal against the configured caps;
`quotes` weighs a request's estimate against max_cost, the budgets and the confirmation threshold.
"""
