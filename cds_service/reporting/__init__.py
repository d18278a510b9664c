"""What clinicians did with the cards: analytics queries and figures, as JSON, a web page and a terminal table."""
