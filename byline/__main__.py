from byline.cli import app

app()
