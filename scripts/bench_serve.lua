-- wrk request for scripts/bench_serve.sh: one Bangla comment per POST /v1/classify.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"texts": ["তুমি খুব ভালো মানুষ, কিন্তু এই লোকটা একটা চোর আর বেয়াদব"]}'
