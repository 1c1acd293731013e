async def test_help_lists_commands(slack):
    response = await slack.command("help")
    assert response.status_code == 200
    body = response.json()
    assert body["response_type"] == "ephemeral"
    text = str(body["blocks"])
    assert "story add" in text and "sprint plan" in text


async def test_story_add_stores(slack):
    response = await slack.command("story add Train ranker --points 3")
    assert response.status_code == 200, response.text
    print(response.json())
    assert "Added S-1" in response.json()["text"]
