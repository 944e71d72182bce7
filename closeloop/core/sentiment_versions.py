"""Which sentiment readings are interim: the version the interim model writes (the theme
engine builds that model; rows read under it are read again once the tuned model is
ready). Apart from any Django model, so the tuning child, which runs without Django,
can import it."""

INTERIM_SENTIMENT = "sent-minilm-frozen-lr-2"
# Every interim version there has been: rows any of them read are read again.
INTERIM_SENTIMENTS = (INTERIM_SENTIMENT, "sent-minilm-frozen-lr-1")
